"""photoconsent's CLI commands, one module per area; ``cli.main`` registers them."""
