"""The study scripts, one per study (`gradlab study NAME`); installed as ``gradlab.studies``."""
