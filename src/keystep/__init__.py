"""keystep: self-hosted conversion analytics with micro and macro conversions as a first-class model."""

__version__ = "0.1.0"
