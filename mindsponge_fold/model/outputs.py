"""Names and symbolic shapes of the network's outputs (AlphaFold's output names, as in the reference fixture's
``outputs_recycle*.npz``). Used to crop padded outputs back to the true length and to validate output files."""
from mindsponge_fold.data.feature_shapes import N_RES, N_SEQ

L = "L"   # structure-module layers

OUTPUTS = {
    "representations/single": (N_RES, None),
    "representations/pair": (N_RES, N_RES, None),
    "representations/msa_first_row": (N_RES, None),
    "representations/structure_module": (N_RES, None),
    "representations/msa_rows0to7": (None, N_RES, None),
    "distogram/logits": (N_RES, N_RES, None),
    "distogram/bin_edges": (None,),
    "masked_msa/logits": (N_SEQ, N_RES, None),
    "predicted_lddt/logits": (N_RES, None),
    "experimentally_resolved/logits": (N_RES, None),
    "predicted_aligned_error/logits": (N_RES, N_RES, None),
    "predicted_aligned_error/breaks": (None,),
    "structure_module/final_atom_positions": (N_RES, 37, 3),
    "structure_module/final_atom_mask": (N_RES, 37),
    "structure_module/traj": (L, N_RES, 7),
    "structure_module/final_affines": (N_RES, 7),
    "structure_module/final_atom14_positions": (N_RES, 14, 3),
    "structure_module/final_atom14_mask": (N_RES, 14),
    "structure_module/sidechains/angles_sin_cos": (L, N_RES, 7, 2),
    "structure_module/sidechains/unnormalized_angles_sin_cos": (L, N_RES, 7, 2),
    "structure_module/sidechains/atom_pos": (L, N_RES, 14, 3),
    "structure_module/sidechains/frames": (L, N_RES, 8, 12),
}

# What iteration r hands to iteration r + 1 (saved as recycle_<r>/<key>).
RECYCLED = {
    "single": "representations/single",
    "pair": "representations/pair",
    "msa_first_row": "representations/msa_first_row",
    "final_atom_positions": "structure_module/final_atom_positions",
}


def crop_output(name: str, value, n_res: int, n_seq: int | None = None):
    """Crop a padded output back to ``n_res`` residues (and ``n_seq`` MSA rows) using the table."""
    dims = OUTPUTS.get(name)
    if dims is None or getattr(value, "ndim", 0) != len(dims):
        return value
    index = []
    for d in dims:
        if d == N_RES:
            index.append(slice(0, n_res))
        elif d == N_SEQ and n_seq is not None:
            index.append(slice(0, n_seq))
        else:
            index.append(slice(None))
    return value[tuple(index)]
