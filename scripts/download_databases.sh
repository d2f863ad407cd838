#!/usr/bin/env bash
# Fetch the sequence and structure databases AlphaFold 2.3 searches, in AlphaFold's directory layout, as the
# full_dbs or reduced_dbs set. Run with --help for the options; the parameters are scripts/download_params.sh.
set -euo pipefail
DL_SCRIPT="download_databases.sh"
# shellcheck source=download_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/download_common.sh"

# name | sets (full, reduced, or opt: only with --only) | directory | how it is unpacked | download GB | unpacked GB |
# source(s), space-separated. Sizes are AlphaFold's README figures (v2.3); pdb_mmcif is an rsync mirror of the PDB.
TABLE="
bfd|full|bfd|untar|271.6|1800|https://storage.googleapis.com/alphafold-databases/casp14_versions/bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt.tar.gz
small_bfd|reduced|small_bfd|gunzip|9.6|17|https://storage.googleapis.com/alphafold-databases/reduced_dbs/bfd-first_non_consensus_sequences.fasta.gz
mgnify|full reduced|mgnify|gunzip|67|120|https://storage.googleapis.com/alphafold-databases/v2.3/mgy_clusters_2022_05.fa.gz
pdb70|full reduced|pdb70|untar|19.5|56|http://wwwuser.gwdg.de/~compbiol/data/hhsuite/databases/hhsuite_dbs/old-releases/pdb70_from_mmcif_200401.tar.gz
pdb_mmcif|full reduced|pdb_mmcif|mmcif|43|238|rsync.rcsb.org::ftp_data/structures/divided/mmCIF/ https://files.wwpdb.org/pub/pdb/data/status/obsolete.dat
uniref30|full reduced|uniref30|untar|52.5|206|https://storage.googleapis.com/alphafold-databases/v2.3/UniRef30_2021_03.tar.gz
uniclust30|opt|uniclust30|untar|24.9|86|https://storage.googleapis.com/alphafold-databases/casp14_versions/uniclust30_2018_08_hhsuite.tar.gz
uniref90|full reduced|uniref90|gunzip|34|67|https://ftp.ebi.ac.uk/pub/databases/uniprot/uniref/uniref90/uniref90.fasta.gz
uniprot|full reduced|uniprot|uniprot|53|105|https://ftp.ebi.ac.uk/pub/databases/uniprot/current_release/knowledgebase/complete/uniprot_trembl.fasta.gz https://ftp.ebi.ac.uk/pub/databases/uniprot/current_release/knowledgebase/complete/uniprot_sprot.fasta.gz
pdb_seqres|full reduced|pdb_seqres|plain|0.2|0.2|https://files.wwpdb.org/pub/pdb/derived_data/pdb_seqres.txt
"
RSYNC_PORT=33444             # rsync.rcsb.org's rsync port

usage() {
  cat <<EOF
usage: scripts/download_databases.sh [options] DIR [full_dbs|reduced_dbs]

Download the databases of AlphaFold 2.3's monomer search into DIR, one directory each, in AlphaFold's layout
(DIR/uniref90/uniref90.fasta, DIR/mgnify/mgy_clusters_2022_05.fa, DIR/pdb_mmcif/mmcif_files/, ...).
full_dbs (default) has BFD, reduced_dbs the small BFD instead:

$(list_table all)

options:
  --only NAME,...   just these databases (names above; uniclust30, AlphaFold's pre-2.3 HHblits database, only so)
  --base-url URL    fetch every file from URL/<file name> instead (a mirror, or file:///dir); the mmCIF files from
                    URL/mmCIF/ (rsync, or a copy from a local directory); also \$MSF_DOWNLOAD_BASE_URL
  --sha256 FILE=HEX expected sha256 of a downloaded file (repeatable); a mismatch removes it and fails (exit 1)
  --keep-archives   keep the downloads in DIR/downloads/ after unpacking
  --dry-run         list every file that would be downloaded, with its size, and exit
  -h, --help        this text

Resumable: files are fetched into DIR/downloads/<file>.part (curl -C -, or wget -c) and the mmCIF mirror with rsync,
so running the same command again continues where it stopped; a database whose directory is complete is skipped.
Atomic: each database is unpacked into DIR/.<name>.partial and renamed to DIR/<name> when complete, with
DIR/<name>/download_record.txt (URL, size, sha256 of each download). Errors are one line on stderr, exit status 1
(2 for bad arguments). Parameters: scripts/download_params.sh.
EOF
}

# the table rows of a set (full_dbs, reduced_dbs, all), or of the --only names
rows() {
  local want="$1" only="${2:-}" line name sets
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    IFS='|' read -r name sets _ <<< "$line"
    if [ -n "$only" ]; then
      [[ ",$only," == *",$name,"* ]] || continue
    elif [ "$want" = full_dbs ]; then
      [[ " $sets " == *" full "* ]] || continue
    elif [ "$want" = reduced_dbs ]; then
      [[ " $sets " == *" reduced "* ]] || continue
    fi
    echo "$line"
  done <<< "$TABLE"
}

human() {   # GB -> text
  awk -v g="$1" 'BEGIN { if (g >= 1000) printf "%.2f TB", g / 1000; else if (g >= 1) printf "%.1f GB", g;
                         else printf "%.0f MB", g * 1000 }'
}

source_url() {  # the URL a table source is fetched from (--base-url applied)
  dl_url "$1"
}

mmcif_source() {   # rsync source of the mmCIF tree
  local base="${DL_BASE_URL:-}"
  if [ -z "$base" ]; then
    echo "$1"
  elif [[ "$base" == file://* ]]; then
    echo "${base#file://}/mmCIF/"
  else
    echo "${base%/}/mmCIF/"
  fi
}

list_table() {   # a readable table of the rows of a set
  local line name sets d how gb ugb srcs src sets_text
  printf '  %-11s %-13s %10s %10s  %s\n' "name" "set" "download" "unpacked" "source"
  while IFS='|' read -r name sets d how gb ugb srcs; do
    sets_text="${sets/opt/--only}"
    sets_text="${sets_text/full reduced/both}"
    printf '  %-11s %-13s %10s %10s  %s\n' "$name" "$sets_text" "$(human "$gb")" "$(human "$ugb")" "${srcs%% *}"
    for src in $(echo "$srcs" | cut -s -d' ' -f2-); do
      printf '  %-11s %-13s %10s %10s  %s\n' "" "" "" "" "$src"
    done
  done < <(rows "$1")
}

dry_run() {   # every file of the selected rows with its size
  local total=0 utotal=0 name sets d how gb ugb srcs src first
  echo "would download into $dir (dry run, nothing written):"
  while IFS='|' read -r name sets d how gb ugb srcs; do
    first=1
    for src in $srcs; do
      if [ "$how" = mmcif ] && [ "$first" = 1 ]; then
        printf '  %-11s %-40s %10s  rsync %s -> %s\n' "$name" "mmCIF files (~200,000)" "$(human "$gb")" \
          "$(mmcif_source "$src")" "$dir/$d/mmcif_files/"
      elif [ "$first" = 1 ]; then
        printf '  %-11s %-40s %10s  %s -> %s\n' "$name" "$(basename "$src")" "$(human "$gb")" "$(source_url "$src")" \
          "$dir/$d/"
      else
        printf '  %-11s %-40s %10s  %s -> %s\n' "$name" "$(basename "$src")" "(above)" "$(source_url "$src")" \
          "$dir/$d/"
      fi
      first=0
    done
    total="$(awk -v a="$total" -v b="$gb" 'BEGIN { print a + b }')"
    utotal="$(awk -v a="$utotal" -v b="$ugb" 'BEGIN { print a + b }')"
  done < <(selected)
  echo "total: $(human "$total") to download, $(human "$utotal") unpacked"
}

expected_sha() {   # the --sha256 value given for a file name, if any
  local file="$1" kv
  for kv in "${checksums[@]+"${checksums[@]}"}"; do
    if [ "${kv%%=*}" = "$file" ]; then
      echo "${kv#*=}"
      return
    fi
  done
}

fetch_one() {   # fetch_one SOURCE -> DIR/downloads/<file> (recorded into the partial directory $2)
  local url archive
  url="$(source_url "$1")"
  archive="$dir/downloads/$(basename "$1")"
  dl_fetch "$url" "$archive" "$(expected_sha "$(basename "$1")")"
  dl_record "$2" "$url" "$archive"
}

drop_archive() {
  [ "$keep" = 1 ] || rm -f "$1"
}

fetch_mmcif() {   # fetch_mmcif RSYNC_SOURCE PARTIAL_DIR: mirror, then unzip and flatten into PARTIAL/mmcif_files
  local src raw="$dir/downloads/pdb_mmcif_raw" tmp="$2" n
  src="$(mmcif_source "$1")"
  mkdir -p "$raw" "$tmp/mmcif_files"
  dl_say "pdb_mmcif: mirroring $src into $raw (rsync; run again to continue)"
  if command -v rsync > /dev/null; then
    local port=()
    [[ "$src" == *::* ]] && [ -z "${DL_BASE_URL:-}" ] && port=(--port="$RSYNC_PORT")
    rsync --recursive --links --perms --times --compress --delete "${port[@]+"${port[@]}"}" "$src" "$raw/" \
      || dl_die "rsync of $src failed (exit $?); run again to continue (behind a proxy set RSYNC_PROXY)"
  elif [ -d "$src" ]; then
    cp -R "$src/." "$raw/"
  else
    dl_die "pdb_mmcif needs rsync (apt-get install rsync) to mirror $src"
  fi
  dl_say "pdb_mmcif: unzipping and flattening the mmCIF files"
  find "$raw" -type f -name '*.cif.gz' -print0 | xargs -0 -r -n 256 -P 2 sh -c '
    out="$0"; for f in "$@"; do b="${f##*/}"; gunzip -c "$f" > "$out/${b%.gz}.tmp" && mv "$out/${b%.gz}.tmp" "$out/${b%.gz}" || exit 1; done
  ' "$tmp/mmcif_files" || dl_die "unzipping the mmCIF files of $raw failed"
  find "$raw" -type f -name '*.cif' -exec cp {} "$tmp/mmcif_files/" \;
  n="$(find "$tmp/mmcif_files" -name '*.cif' | wc -l)"
  [ "$n" -gt 0 ] || dl_die "no mmCIF files under $raw (from $src)"
  echo "source: $src ($n mmCIF files)" >> "$tmp/download_record.txt"
  echo >> "$tmp/download_record.txt"
  [ "$keep" = 1 ] || rm -rf "$raw"
}

install_row() {   # fetch and unpack one database into DIR/<directory>, atomically
  local name="$1" d="$3" how="$4" srcs="$7" final tmp src archive base
  final="$dir/$d"
  if [ -f "$final/download_record.txt" ]; then
    dl_say "$name: $final is complete, skipped"
    return
  fi
  tmp="$(dl_partial_dir "$final")"
  case "$how" in
    gunzip|plain)
      src="$srcs"
      fetch_one "$src" "$tmp"
      archive="$dir/downloads/$(basename "$src")"
      if [ "$how" = gunzip ]; then
        base="$(basename "$src" .gz)"
        dl_say "$name: unpacking $(basename "$src")"
        gunzip -c "$archive" > "$tmp/$base" || { rm -rf "$tmp"; dl_die "$archive is not a readable gzip file; remove it and run again"; }
        drop_archive "$archive"
      elif [ "$keep" = 1 ]; then
        cp "$archive" "$tmp/"
      else
        mv "$archive" "$tmp/"
      fi ;;
    untar)
      src="$srcs"
      fetch_one "$src" "$tmp"
      archive="$dir/downloads/$(basename "$src")"
      dl_say "$name: unpacking $(basename "$src")"
      tar --extract --file="$archive" --directory="$tmp" 2> /dev/null \
        || { rm -rf "$tmp"; dl_die "$archive is not a readable tar archive; remove it and run again"; }
      drop_archive "$archive" ;;
    uniprot)   # TrEMBL then Swiss-Prot, concatenated into uniprot.fasta (as AlphaFold)
      for src in $srcs; do
        fetch_one "$src" "$tmp"
      done
      dl_say "$name: unpacking and joining into uniprot.fasta"
      : > "$tmp/uniprot.fasta"
      for src in $srcs; do
        archive="$dir/downloads/$(basename "$src")"
        gunzip -c "$archive" >> "$tmp/uniprot.fasta" || { rm -rf "$tmp"; dl_die "$archive is not a readable gzip file; remove it and run again"; }
      done
      for src in $srcs; do drop_archive "$dir/downloads/$(basename "$src")"; done ;;
    mmcif)
      fetch_mmcif "${srcs%% *}" "$tmp"
      fetch_one "${srcs#* }" "$tmp"
      archive="$dir/downloads/$(basename "${srcs#* }")"
      if [ "$keep" = 1 ]; then cp "$archive" "$tmp/"; else mv "$archive" "$tmp/"; fi ;;
  esac
  dl_publish "$tmp" "$final"
  dl_say "$name: done ($final)"
}

selected() {
  rows "$set_name" "$only"
}

dir="" set_name="" only="" keep=0 dry=0 checksums=()
DL_BASE_URL="${MSF_DOWNLOAD_BASE_URL:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) set_name=all; usage; exit 0 ;;
    --only) [ $# -ge 2 ] || { echo "$DL_SCRIPT: error: --only needs a value" >&2; exit 2; }; only="$2"; shift 2 ;;
    --base-url) [ $# -ge 2 ] || { echo "$DL_SCRIPT: error: --base-url needs a value" >&2; exit 2; }
                DL_BASE_URL="$2"; shift 2 ;;
    --sha256) [[ $# -ge 2 && "$2" == ?*=* ]] || { echo "$DL_SCRIPT: error: --sha256 needs FILE=HEX" >&2; exit 2; }
              checksums+=("${2%%=*}=$(echo "${2#*=}" | tr 'A-F' 'a-f')"); shift 2 ;;
    --keep-archives) keep=1; shift ;;
    --dry-run) dry=1; shift ;;
    -*) echo "$DL_SCRIPT: error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) if [ -z "$dir" ]; then dir="$1"
       elif [ -z "$set_name" ]; then set_name="$1"
       else echo "$DL_SCRIPT: error: unexpected argument '$1' (see --help)" >&2; exit 2; fi
       shift ;;
  esac
done
[ -n "$dir" ] || { echo "$DL_SCRIPT: error: no DIR given (usage: scripts/download_databases.sh [options] DIR [full_dbs|reduced_dbs])" >&2; exit 2; }
set_name="${set_name:-full_dbs}"
if [ "$set_name" != full_dbs ] && [ "$set_name" != reduced_dbs ]; then
  echo "$DL_SCRIPT: error: unknown set '$set_name' (full_dbs or reduced_dbs)" >&2
  exit 2
fi
if [ -n "$only" ]; then
  known=",$(rows all | cut -d'|' -f1 | paste -sd,),"
  for n in ${only//,/ }; do
    [[ "$known" == *",$n,"* ]] || { echo "$DL_SCRIPT: error: unknown database '$n' in --only (known: ${known:1:-1})" >&2; exit 2; }
  done
fi
for kv in "${checksums[@]+"${checksums[@]}"}"; do
  [[ "${kv#*=}" =~ ^[0-9a-f]{64}$ ]] || { echo "$DL_SCRIPT: error: --sha256 ${kv%%=*}: not 64 hex digits" >&2; exit 2; }
done

if [ "$dry" = 1 ]; then
  dry_run
  exit 0
fi
mkdir -p "$dir"
while IFS='|' read -r -u 3 name sets d how gb ugb srcs; do     # fd 3: the tools keep stdin
  install_row "$name" "$sets" "$d" "$how" "$gb" "$ugb" "$srcs"
done 3< <(selected)
rmdir "$dir/downloads" 2> /dev/null || true
dl_say "all done: $dir"
