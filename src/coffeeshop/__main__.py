"""`python -m coffeeshop`: the same as the `coffeeshop` command."""

from coffeeshop.cli import main

main()
