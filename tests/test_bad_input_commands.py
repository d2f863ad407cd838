"""Bad-input corpus, command lines and outputs: unknown commands and options, option values and combinations, output
paths, evaluate's and relax's inputs. What every case asserts: ``bad_inputs.py``."""
from __future__ import annotations

import pytest

from bad_inputs import Corpus, check_case, evaluate, make_features, native, predict, relax, run_features, train
from helpers import reference_path, renumber_pdb_text, shared_path

corpus = Corpus()
case = corpus.case


# --------------------------------------------------------------------------------------------- CLI arguments

@case("cli-unknown-command", "unknown command 'fold'")
def _(w):
    return ["fold", "--fasta", "x"]


@case("cli-missing-required", "the following arguments are required: --output-dir")
def _(w):
    return ["predict", "--fasta", w.fasta()]


@case("cli-unknown-option", "unrecognized arguments: --recycles")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--recycles", "3")


@case("cli-not-an-integer", "--num-recycle", "invalid int value")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--num-recycle", "three")


@case("cli-bad-choice", "--models-to-relax", "invalid choice")
def _(w):
    return predict(w, "--models-to-relax", "some")


@case("alignments-dir-missing", "@no_aln", "alignment directory not found")
def _(w):
    return make_features(w, align=w.path("no_aln"))


@case("alignments-dir-without-alignments", "@aln", "no alignment files")
def _(w):
    return make_features(w, align=w.alignments(files={"notes.txt": "x"}))


@case("predict-output-dir-is-a-file", "@out", "is a file")
def _(w):
    w.text("out", "a file\n")
    return predict(w)


@case("predict-output-dir-unwritable", "@blocker", "not a directory")
def _(w):
    w.text("blocker", "a file\n")
    return ["predict", "--output-dir", w.path("blocker/out"), "--device", "CPU", "--models-to-relax", "none",
            "--models", "tiny", "--random-weights", "--fasta", w.fasta(), "--alignments-dir", w.alignments()]


@case("predict-fasta-and-features", "--fasta", "--features", "not both")
def _(w):
    return predict(w, "--features", reference_path("raw_features.npz"))


@case("predict-name-without-features", "--name goes with --features")
def _(w):
    return predict(w, "--name", "x")


@case("predict-no-models", "--models lists no model")
def _(w):
    return predict(w, models=["--models", ",", "--random-weights"])


@case("predict-model-twice", "--models names model 'tiny' twice")
def _(w):
    return predict(w, models=["--models", "tiny,tiny", "--random-weights"])


@case("predict-model-name-with-slash", "--models entry", "plain model name")
def _(w):
    return predict(w, models=["--models", "a/b", "--random-weights"])


@case("predict-negative-recycling", "--num-recycle must be >= 0")
def _(w):
    return predict(w, "--num-recycle", "-2")


@case("predict-allow-unknown-with-relax", "--allow-unknown", "--models-to-relax none")
def _(w):
    argv = predict(w, "--allow-unknown")
    argv.remove("none")
    argv.remove("--models-to-relax")
    return argv


@case("make-features-out-is-a-directory", "@raw.npz", "directory")
def _(w):
    w.directory("raw.npz")
    return make_features(w)


@case("make-features-out-under-a-file", "@blocker", "not a directory")
def _(w):
    w.text("blocker", "x\n")
    argv = make_features(w)
    argv[argv.index("--out") + 1] = str(w.path("blocker/raw.npz"))
    return argv


@case("run-features-out-is-a-directory", "@o.npz", "directory")
def _(w):
    w.directory("o.npz")
    return run_features(w, reference_path("processed_features.npz"))


@case("run-features-out-under-a-file", "@blocker", "not a directory")
def _(w):
    w.text("blocker", "x\n")
    return run_features(w, reference_path("processed_features.npz"), out=w.path("blocker/o.npz"))


@case("relax-out-under-a-file", "@blocker", "not a directory")
def _(w):
    w.text("blocker", "x\n")
    return ["relax", "--pdb", shared_path("data", "alphafold_testdata", "relax", "model_output.pdb"),
            "--out", w.path("blocker/relaxed.pdb")]


@case("evaluate-out-is-a-file", "@eval", "is a file")
def _(w):
    w.text("eval", "x\n")
    return evaluate(w, native(), native())


@case("evaluate-out-is-a-file-before-predict", "@eval", "is a file")
def _(w):
    w.text("eval", "x\n")            # refused before --fasta runs predict (which would compile a model)
    return evaluate(w, w.path("preds"), native(), "--fasta", w.fasta(), "--predict-args",
                    "--models tiny --random-weights --single-sequence --models-to-relax none")


@case("train-out-is-a-file", "@run", "is a file")
def _(w):
    w.text("run", "x\n")
    return train(w)


@case("train-workers-zero", "--workers must be >= 1")
def _(w):
    return train(w, "--workers", "0")


@case("evaluate-predict-args-without-fasta", "--predict-args needs --fasta")
def _(w):
    return evaluate(w, native(), native(), "--predict-args", "--models tiny")


@case("evaluate-fasta-missing", "@nope.fasta", "no such FASTA file")
def _(w):
    return evaluate(w, w.path("preds"), native(), "--fasta", w.path("nope.fasta"))


@case("evaluate-domains-missing", "@d.tsv", "no such domain file")
def _(w):
    return evaluate(w, native(), native(), "--domains", w.path("d.tsv"))


@case("evaluate-domains-bad-columns", "@d.tsv:1", "expected 3 columns")
def _(w):
    return evaluate(w, native(), native(), "--domains", w.text("d.tsv", "T1031 D1\n"))



# ----------------------------------------------------------------------------------------------------- evaluate

@case("evaluate-no-common-residues", "@preds/T1031.pdb", "no residue")
def _(w):
    w.text("preds/T1031.pdb", renumber_pdb_text(native().read_text(), 5000))
    return evaluate(w, w.path("preds"), native(), "--match", "number")


@case("evaluate-length-mismatch", "@preds/T1031.pdb", "T1031")
def _(w):
    text = native("T1043.pdb").read_text()        # another target's model under this target's name
    w.text("preds/T1031.pdb", text)
    return evaluate(w, w.path("preds"), native(), "--match", "number")


@case("evaluate-prediction-empty-file", "@preds/T1031.pdb", "Empty file")
def _(w):
    w.text("preds/T1031.pdb", "")
    return evaluate(w, w.path("preds"), native())


@case("evaluate-native-binary", "@natives/T1031.pdb", "cannot read")
def _(w):
    w.random("natives/T1031.pdb")
    return evaluate(w, native(), w.path("natives"))


@case("evaluate-natives-dir-empty", "@natives", "no structure files")
def _(w):
    return evaluate(w, native(), w.directory("natives"))


@case("evaluate-prediction-cif-garbage", "@preds/T1031.cif", "mmCIF")
def _(w):
    w.text("preds/T1031.cif", "loop_\n_atom_site.id\n1\n")
    return evaluate(w, w.path("preds"), native())


# -------------------------------------------------------------------------------------------------------- relax

@case("relax-pdb-no-atoms", "@in.pdb", "no ATOM records")
def _(w):
    return relax(w, w.text("in.pdb", "HEADER    EMPTY\nREMARK   1 nothing here\nEND\n"))


@case("relax-pdb-only-water", "@in.pdb", "no ATOM records")
def _(w):
    return relax(w, w.text("in.pdb", "HETATM    1  O   HOH A   1      10.000  10.000  10.000  1.00  0.00           O\n"
                                     "END\n"))


@case("relax-pdb-binary", "@in.pdb", "cannot read PDB file")
def _(w):
    return relax(w, w.random("in.pdb"))


@case("relax-pdb-directory", "@in.pdb", "cannot read PDB file")
def _(w):
    return relax(w, w.directory("in.pdb"))


@case("relax-pdb-single-residue", "@in.pdb", "two or more residues")
def _(w):
    atoms = [ln for ln in native().read_text().splitlines() if ln.startswith("ATOM")]
    return relax(w, w.text("in.pdb", "\n".join(ln for ln in atoms if ln[22:27] == atoms[0][22:27]) + "\nEND\n"))


@case("relax-pdb-unknown-residue", "@in.pdb", "unknown type")
def _(w):
    text = shared_path("data", "alphafold_testdata", "relax", "model_output.pdb").read_text()
    first = next(ln for ln in text.splitlines() if ln.startswith("ATOM"))
    resname = first[17:20]
    lines = [ln[:17] + "UNK" + ln[20:] if ln.startswith("ATOM") and ln[22:26] == first[22:26] and
             ln[17:20] == resname else ln for ln in text.splitlines()]
    return relax(w, w.text("in.pdb", "\n".join(lines) + "\n"))


@case("relax-rebuilt-atoms", "@in.pdb", "2 heavy atom(s) missing", "rebuilt", warn=True)
def _(w):
    text = shared_path("data", "alphafold_testdata", "relax", "model_output.pdb").read_text()
    atoms = [ln for ln in text.splitlines() if ln.startswith("ATOM")]
    side = [ln for ln in atoms if ln[12:16].strip() not in ("N", "CA", "C", "O", "CB")][:2]    # two side-chain atoms
    return relax(w, w.text("in.pdb", "\n".join(ln for ln in text.splitlines() if ln not in side) + "\n"),
                 "--max-outer-iterations", "1")


@pytest.mark.parametrize("name", sorted(corpus.cases))
def test_bad_input(name, tmp_path, capsys, monkeypatch):
    check_case(corpus.cases[name], tmp_path, capsys, monkeypatch)


def test_the_corpus_is_large_enough():
    """The four corpus files hold over 180 cases between them, each name once."""
    import test_bad_input_config
    import test_bad_input_features
    import test_bad_input_parsers
    files = [test_bad_input_parsers, test_bad_input_features, test_bad_input_config]
    names = [name for module in files for name in module.corpus.cases] + list(corpus.cases)
    assert len(names) == len(set(names)) and len(names) >= 180
