"""The AlgoLink hub: projects, groups, services and their versions, built, run and served.

Start it with ``algolink hub``; see :mod:`algolink_jupyter.hub.app`. It runs as a standalone Tornado
service and never imports IPython, ipywidgets or ipykernel.
"""
