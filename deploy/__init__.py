"""Registry and deployment code (MLflow registry, manifests) lands here."""
