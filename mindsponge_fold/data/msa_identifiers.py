"""Species identifiers of MSA rows (the ``msa_species_identifiers`` raw feature).

UniProtKB rows are named ``db|Accession|EntryName`` (``tr|A0A146SKV9|A0A146SKV9_FUNHE``,
``sp|P0C2L1|A3X1_LOXLA``); the species mnemonic is what follows the last underscore of the entry name. Rows named
any other way (UniRef90_..., MGnify ids, BFD cluster names) have no species: the empty string. This follows
AlphaFold's ``msa_identifiers`` rules, which multimer MSA pairing relies on.
"""
from __future__ import annotations

import re

# db | accession (6-10 chars, optional _<digit> isoform suffix) | entry name "<id>_<species 1-5>" (+ optional
# "_<digits>" added by small BFD).
_UNIPROT_NAME = re.compile(
    r"^(?:tr|sp)\|"
    r"(?P<accession>[A-Za-z0-9]{6,10})(?:_\d)?\|"
    r"[A-Za-z0-9]+_"
    r"(?P<species>[A-Za-z0-9]{1,5})"
    r"(?:_\d+)?$")


def sequence_identifier(description: str) -> str | None:
    """First word of an MSA row description, without a jackhmmer ``/start-end`` suffix (None when empty)."""
    words = description.split()
    if not words:
        return None
    return words[0].partition("/")[0]


def species_id(description: str) -> str:
    """Species mnemonic of a UniProtKB row ('' when the row is not named the UniProtKB way)."""
    ident = sequence_identifier(description)
    if ident is None:
        return ""
    match = _UNIPROT_NAME.search(ident.strip())
    return match.group("species") if match else ""
