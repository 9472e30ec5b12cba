"""Image containers, walked by hand: metadata findings and the texts embedded in a photo."""
