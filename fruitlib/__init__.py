"""fruitlib: the small library behind the transfer-learning notebook series (fruit photos, ResNets)."""

from .errors import FruitlibError

__version__ = "0.8.0"
__all__ = ["FruitlibError", "__version__"]
