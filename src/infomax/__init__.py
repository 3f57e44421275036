"""infomax: replication pipeline for information-theoretic representation learning."""

__version__ = "0.1.0"
