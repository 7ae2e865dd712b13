"""The paper templates, one folder per study (`gradlab paper build NAME`); installed as
``gradlab.papers``."""
