"""Using fitted generators: loading, sampling, imputation, quality metrics."""
