"""Dashboard pieces: each function renders one section from core data; app.py wires them."""
