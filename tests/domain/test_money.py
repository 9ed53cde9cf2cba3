import pytest

from domain.money import format_money


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (0, "cad", "$0.00 CAD"),
        (5, "cad", "$0.05 CAD"),
        (12000, "cad", "$120.00 CAD"),
        (99999, "cad", "$999.99 CAD"),
        (123450, "cad", "$1,234.50 CAD"),
        (123456789, "usd", "$1,234,567.89 USD"),
        (-1250, "cad", "-$12.50 CAD"),
    ],
)
def test_format_money_separates_thousands_and_keeps_two_decimals(amount: int, currency: str, shown: str) -> None:
    assert format_money(amount, currency) == shown


def test_format_money_defaults_to_the_schools_currency() -> None:
    assert format_money(4500) == "$45.00 CAD"


@pytest.mark.parametrize("amount", [12.5, True, "100"])
def test_format_money_takes_integer_minor_units_only(amount: object) -> None:
    with pytest.raises(ValueError, match="amounts are integer minor units"):
        format_money(amount)  # type: ignore[arg-type]
