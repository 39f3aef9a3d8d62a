# Voice agent developer commands for Windows PowerShell.
#   .\dev.ps1 run     install what is missing, start LiveKit + backend + agent + UI, print the URL
#   .\dev.ps1 test    install what is missing, run lint, the unit and end-to-end tests
#   .\dev.ps1 converse [name]   play the scripted conversations in Chromium, report each turn
#   .\dev.ps1 soak [N]  the fault soak: N random cycles (default 50) on the production shape, then a report
#   .\dev.ps1 setup   only install
#   .\dev.ps1 lock    re-resolve requirements\*.txt after editing the ranges in pyproject.toml
$ErrorActionPreference = "Stop"
Set-Location -Path $PSScriptRoot

$Python = if ($env:PYTHON) { $env:PYTHON } else { "py" }
$Venv = ".venv"
$VenvPython = Join-Path $Venv "Scripts\python.exe"
$Lock = "requirements\dev.txt"  # exact versions and hashes (runtime + development)
$Stamp = Join-Path $Venv ".requirements.sha"

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
$Want = (Get-FileHash $Lock -Algorithm SHA256).Hash.ToLower()
$Have = if (Test-Path $Stamp) { (Get-Content $Stamp -Raw).Trim() } else { "" }
if ($Have -ne $Want) {
    Write-Host "==> installing Python dependencies from $Lock (first run: a few minutes)"
    & $VenvPython -m pip install --quiet --upgrade pip
    & $VenvPython -m pip install --progress-bar off --require-hashes -r $Lock
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    Set-Content -Path $Stamp -Value $Want
}

& $VenvPython -m devtools @args
exit $LASTEXITCODE
