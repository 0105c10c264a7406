# No pyproject.toml on purpose: without one, pip builds this with the
# setuptools already installed instead of fetching a build backend from an
# index, so `pip install ./clients/python` works offline too.
from setuptools import setup

setup(
    name="paracorr",
    version="0.1.0",
    description="Client for the paracorrd robustness service (standard library only)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=["paracorr"],
    python_requires=">=3.9",
)
