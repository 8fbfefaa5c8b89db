"""Tables and plots of runs and sweeps."""
