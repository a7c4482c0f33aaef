"""The part of the build that pyproject.toml cannot state: the packages found under ordersctl/, plus the
top-level sql/ folder (the one source of the migrations) mapped into the wheel as the package ordersctl.sql,
with setuptools' package_dir. Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(include=["ordersctl", "ordersctl.*"], exclude=["*.__pycache__"]),
        "ordersctl.sql",
    ],
    package_dir={"ordersctl.sql": "sql"},
)
