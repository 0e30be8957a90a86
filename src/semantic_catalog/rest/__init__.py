"""What the HTTP API and the feature wings' endpoints share: the base view, error mapping, response shapes."""
