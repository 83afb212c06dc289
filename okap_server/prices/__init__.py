"""What a model costs: the maintained ``genai-prices`` data, the operator's own entries
(``OKAP_PRICES_FILE``) on top, and one :class:`Price` per request that both the hold
before forwarding and the settlement after it use."""

from okap_server.prices.book import Prices
from okap_server.prices.overrides import PriceFileError
from okap_server.prices.price import Price

__all__ = ["Price", "PriceFileError", "Prices"]
