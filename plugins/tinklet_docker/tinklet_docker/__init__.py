"""docker runtime for tinklet."""
