#!/usr/bin/env bash
# Fails when a module includes what its layer may not: core/ no Boost or nlohmann; api/ no
# Beast, Asio or Program_options (the flags are read in server/). Arrows point inward only:
# server -> api -> core.
set -u
root=${1:?usage: layering.sh SOURCE_DIR}
cd "$root" || exit 2
status=0
if hits=$(grep -rnE '#include\s*[<"](boost|nlohmann)/' core); then
    echo "core/ includes Boost or nlohmann:"; echo "$hits"; status=1
fi
if hits=$(grep -rnE '#include\s*[<"]boost/(beast|asio|program_options)' api); then
    echo "api/ includes Beast, Asio or Program_options:"; echo "$hits"; status=1
fi
if hits=$(grep -rnE '#include\s*"(api|server)/' core); then
    echo "core/ includes an outer layer:"; echo "$hits"; status=1
fi
if hits=$(grep -rnE '#include\s*"server/' api); then
    echo "api/ includes server/:"; echo "$hits"; status=1
fi
[ $status -eq 0 ] && echo "layering: core -> (std, libmnl); api -> core; server -> api: ok"
exit $status
