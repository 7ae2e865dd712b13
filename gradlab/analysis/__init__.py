"""Analysis: the exact reference, the FD engine and its exact decomposition, J's noise and
its attribution, the error models, summaries and minima."""
