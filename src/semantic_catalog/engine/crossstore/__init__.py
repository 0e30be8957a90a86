"""Cross-shop analysis: category links, substitutions, same-product matching and their assignment."""
