"""The planner: construction, feasibility, CP-SAT improvement, infeasibility explanation."""
