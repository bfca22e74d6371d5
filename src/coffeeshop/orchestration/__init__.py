"""Prefect flows, deployments and the Dask runner: the only package that imports Prefect."""
