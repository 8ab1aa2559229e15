"""Deployment: NIR import and export (netx is written by neurodeploy.netx_model)."""
