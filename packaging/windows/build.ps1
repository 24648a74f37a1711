# Windows installer recipe (NOT BUILT OR TESTED here: this project builds and tests on Linux).
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1
# Needs: Python 3.11 (x64) on PATH as "py -3.11", Inno Setup 6 (ISCC.exe) on PATH or in its default folder.
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
$venv = "build\venv-win"
if (-not (Test-Path "$venv\Scripts\python.exe")) { py -3.11 -m venv $venv }
$py = "$venv\Scripts\python.exe"
# torch: the CPU wheel from PyPI is enough (it only exports the networks to ONNX)
& $py -m pip install -q -r packaging\requirements-build.txt
& $py -m pip install -q --no-deps facenet-pytorch==2.6.0
$env:PYTHONPATH = (Get-Location).Path
& $py -m faceapp.runtime.export build\onnx
$env:FACEAPP_ONNX_BUILD_DIR = (Resolve-Path build\onnx).Path
& "$venv\Scripts\pyinstaller.exe" --noconfirm --distpath dist --workpath build\pyinstaller packaging\faceapp.spec
& dist\faceapp\faceapp.exe --version
# the installer icon: Inno Setup wants an .ico
& $py -c "from PIL import Image; Image.open('resources/icons/faceapp.png').save('packaging/windows/faceapp.ico', sizes=[(16,16),(32,32),(48,48),(256,256)])"
$version = (& dist\faceapp\faceapp.exe --version).Split(" ")[1]
$iscc = (Get-Command ISCC.exe -ErrorAction SilentlyContinue).Source
if (-not $iscc) { $iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe" }
& $iscc "/DAppVersion=$version" packaging\windows\faceapp.iss
Write-Host "wrote dist\faceapp-$version-setup.exe"
