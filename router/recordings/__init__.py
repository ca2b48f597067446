"""Call recordings once they are made: how long each is kept, and removing those whose
retention is over."""
