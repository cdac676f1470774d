"""watch: re-check stores continuously, alert on every change, record exposure windows."""
