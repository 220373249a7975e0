"""``--gpus``: which GPUs a check may use, as the user names them. Parsed (not looked up)
when the plan is built, so a typo is a one-line error before any worker starts; ``execution/
gpus.py`` matches the names against the GPUs it finds."""

from __future__ import annotations


def parse_request(value: str) -> tuple[str, ...]:
    """``all`` or GPU indices/UUIDs, comma separated (validated, not looked up)."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise ValueError("is empty: give 'all' or GPU indices such as 0,1,3")
    if names == ["all"]:
        return ("all",)
    for name in names:
        if not (is_index(name) or (name.startswith(("GPU-", "MIG-")) and len(name) <= 100)):
            shown = name if len(name) <= 40 else name[:37] + "..."
            raise ValueError(
                f"must be 'all' or GPU indices (as nvidia-smi numbers them) or UUIDs, got {shown!r}"
            )
    canonical = tuple(str(int(n)) if is_index(n) else n for n in names)
    if len(set(canonical)) != len(canonical):
        raise ValueError(f"names a GPU twice ({','.join(canonical)})")
    return canonical


def is_index(name: str) -> bool:
    return name.isascii() and name.isdigit() and len(name) <= 6
