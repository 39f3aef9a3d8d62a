# Voice agent developer commands for Windows PowerShell.
#   .\dev.ps1 run     install what is missing, start LiveKit + backend + agent + UI, print the URL
#   .\dev.ps1 test    install what is missing, run the unit and end-to-end tests
#   .\dev.ps1 setup   only install
$ErrorActionPreference = "Stop"
Set-Location -Path $PSScriptRoot

$Python = if ($env:PYTHON) { $env:PYTHON } else { "py" }
$Venv = ".venv"
$VenvPython = Join-Path $Venv "Scripts\python.exe"
$Stamp = Join-Path $Venv ".requirements.sha"

if (-not (Test-Path $VenvPython)) {
    Write-Host "==> creating Python virtualenv in $Venv"
    & $Python -m venv $Venv
}
$Want = (Get-FileHash requirements.txt -Algorithm SHA256).Hash.ToLower()
$Have = if (Test-Path $Stamp) { (Get-Content $Stamp -Raw).Trim() } else { "" }
if ($Have -ne $Want) {
    Write-Host "==> installing Python dependencies (first run: a few minutes)"
    & $VenvPython -m pip install --quiet --upgrade pip
    & $VenvPython -m pip install --progress-bar off -r requirements.txt
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    Set-Content -Path $Stamp -Value $Want
}

& $VenvPython -m devtools @args
exit $LASTEXITCODE
