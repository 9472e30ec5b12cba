"""Human review of a publish: the review batch, its contact sheet and the local review page."""
