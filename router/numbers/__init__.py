"""The numbers' inventory at work: numbering/'s rules carried out on the store, the
time-driven transitions, and what a number's status means for its calls."""
