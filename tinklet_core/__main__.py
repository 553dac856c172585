"""``python -m tinklet_core`` is the ``tinklet`` command."""

from tinklet_core.launch import main

main()
