"""Small studies built from ordinary runs: each composes configs, trains runs, and tabulates them."""
