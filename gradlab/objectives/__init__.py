"""Built-in objectives: the seed network and families for the scaling studies."""

from gradlab.objectives.seed import seed_net

__all__ = ["seed_net"]
