"""python -m features.stream: the event stream's consumer (features.stream.consumer)."""

from .consumer import main

main()
