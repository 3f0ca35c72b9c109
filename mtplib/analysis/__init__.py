"""analysis subpackage of mtplib."""
