"""Custom templates (``--templates PATH``, as ColabFold offers): mmCIF files named by the user instead of a template
search over the PDB.

Without template hits, each file gives one template (in place of supplement 1.2.3's template search; the features
of supplement Table 1): of its protein chains, the one whose BLOSUM62 global alignment to the query
(``templates.blosum62_query_to_template``) has the most identical query residues resolved in the structure; a file
whose best chain matches 10% of the query or less is skipped with a warning (AlphaFold's template prefilter drops
hits aligning <= 10% of the query). Templates are ordered best-aligned first, at most ``--max-templates`` (the model
reads the first ones in order). With template hits (an .hhr / hmmsearch file), the hits are featurised by
``templates.TemplateHitFeaturizer`` against these files only (a hit <pdb_id>_<chain> is looked up as the file whose
lower-case stem is <pdb_id>).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mindsponge_fold.common.errors import InputError, warn
from mindsponge_fold.data import mmcif as mmcif_lib
from mindsponge_fold.data import templates

MMCIF_SUFFIXES = (".cif", ".mmcif")
MIN_IDENTITY_FRACTION = 0.1


def template_files(paths, option: str = "--templates") -> tuple:
    """The mmCIF files of ``paths`` (files, or directories whose *.cif / *.mmcif files are taken, sorted); a path
    that does not exist, or a directory without mmCIF files, is an InputError naming it and ``option``."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in MMCIF_SUFFIXES and p.is_file())
            if not found:
                raise InputError(f"{option}: no mmCIF files (*.cif, *.mmcif) in this directory", path)
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{option}: no such file or directory", path)
    return tuple(dict.fromkeys(files))


def files_by_pdb_id(files) -> dict:
    """{lower-case file stem: path}, how template hits name their structure; two files of one stem are an error."""
    out = {}
    for path in files:
        stem = Path(path).stem.lower()
        if stem in out:
            raise InputError(f"--templates: two mmCIF files named '{stem}' ({out[stem]} and this one)", path)
        out[stem] = Path(path)
    return out


def check_template_files(files) -> None:
    """Every file parses as an mmCIF with a protein chain (``mmcif.parse_mmcif``: an InputError naming the file)."""
    for path in files:
        mmcif_lib.parse_mmcif(path)


def _chain_score(query: str, mmcif, chain: str) -> tuple:
    """(identical query residues resolved in the chain's structure, query->SEQRES map) of the BLOSUM62 alignment."""
    seqres = mmcif.chain_to_seqres[chain]
    q2t = templates.blosum62_query_to_template(query, seqres)
    resolved = mmcif.seqres_to_structure[chain]
    score = sum(1 for q, t in enumerate(q2t)
                if t >= 0 and query[q] == seqres[t] and not resolved[int(t)].is_missing)
    return score, q2t


def best_chain(query: str, path) -> tuple:
    """(author chain id, identical resolved residues, query->template map) of the file's best-aligning chain."""
    mmcif = mmcif_lib.parse_mmcif(path)
    scored = [(*_chain_score(query, mmcif, c), c) for c in sorted(mmcif.chain_to_seqres)]
    score, q2t, chain = max(scored, key=lambda s: s[0])      # ties: the first chain in sorted order
    return chain, score, q2t


def custom_template_features(query: str, files, first_sum_probs: float = 100.0, max_templates: int = 20) -> list:
    """One feature dict per usable file (its best chain), best-aligned first, at most ``max_templates``;
    ``template_sum_probs`` counts down by 10 from ``first_sum_probs`` (there is no search score; the model does not
    read it)."""
    chosen = []
    for path in files:
        chain, score, q2t = best_chain(query, path)
        if score <= MIN_IDENTITY_FRACTION * len(query):
            warn(f"--templates: skipped, its best chain ({chain}) has {score} of the query's {len(query)} residues "
                 "aligned identically (10% or less)", path)
            continue
        chosen.append((score, str(path), chain, q2t))
    chosen.sort(key=lambda c: -c[0])                     # stable: equal scores keep the files' order
    out = []
    for score, path, chain, q2t in chosen[:max_templates]:
        sum_probs = max(first_sum_probs - 10.0 * len(out), 0.0)
        out.append(templates.direct_template_features(query, path, chain, np.asarray(q2t), sum_probs=sum_probs))
    return out
