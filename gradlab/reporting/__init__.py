"""Reporting: tables with provenance, figures, papers and the command line."""
