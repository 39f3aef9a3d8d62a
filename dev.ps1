# Voice agent developer commands for Windows PowerShell.
#   .\dev.ps1 run     install what is missing, start LiveKit + backend + agent + UI, print the URL
#   .\dev.ps1 test    install what is missing, run lint, the unit and end-to-end tests
#   .\dev.ps1 converse [name]   play the scripted conversations in Chromium, report each turn
#   .\dev.ps1 soak [N]  the fault soak: N random cycles (default 50) on the production shape, then a report
#   .\dev.ps1 setup   only install
#   .\dev.ps1 lock    re-resolve uv.lock (and export requirements\*.txt) after editing the ranges in pyproject.toml
$ErrorActionPreference = "Stop"
Set-Location -Path $PSScriptRoot

$Python = if ($env:PYTHON) { $env:PYTHON } else { "py" }
$Venv = ".venv"
$VenvPython = Join-Path $Venv "Scripts\python.exe"
$VenvUv = Join-Path $Venv "Scripts\uv.exe"

if (-not (Test-Path $VenvPython)) {
    & $Python -c "import sys; sys.exit(sys.version_info < (3, 11))"
    if ($LASTEXITCODE -ne 0) {
        Write-Error "Python 3.11 or newer is needed: install it, or set PYTHON to its python.exe"
        exit 1
    }
    Write-Host "==> creating Python virtualenv in $Venv"
    & $Python -m venv $Venv
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}
if (-not (Test-Path $VenvUv)) {
    Write-Host "==> installing uv into $Venv (requirements\uv.txt: uv.lock's version, hash-checked)"
    & $VenvPython -m pip install --quiet --require-hashes --no-deps -r requirements\uv.txt
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}
# Install what uv.lock has and the virtualenv lacks (exact versions, every file hash-checked;
# nothing when they agree). --locked refuses a uv.lock that pyproject.toml's ranges no longer
# match, except for `lock`, which re-resolves it. --compile-bytecode, as pip does: without the
# .pyc files (and where PYTHONDONTWRITEBYTECODE is set) every process would compile its imports
# again, ~2 s more to start each backend, worker and job process.
$Locked = if ($args.Count -gt 0 -and $args[0] -eq "lock") { "--frozen" } else { "--locked" }
& $VenvUv sync $Locked --compile-bytecode
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }

& $VenvPython -m devtools @args
exit $LASTEXITCODE
