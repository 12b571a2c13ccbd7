"""The dynamic-pricing model: demand, elasticities, price optimisation."""
