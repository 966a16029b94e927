"""Reading inventories and plans, writing plan folders: the only place that touches files."""
