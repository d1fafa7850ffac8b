"""Raw-data readers, phantom generators, consensus and slicing (the data half of the DAG)."""
