"""The rules of 400 numbers themselves: segments, grading and every number's lifecycle.

Pure like dialplan/ and rating/: no I/O, and the clock is always an argument, so every rule
can be tried at any instant. The router keeps the inventory and carries these rules out.
"""
