"""Helpers the tests share: simulators to point resources at, warehouses to build, ground truth to compare
with. Fixtures live in `conftest.py`; everything here is plain functions and classes the tests import."""
