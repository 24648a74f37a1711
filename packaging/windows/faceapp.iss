; Inno Setup 6 script of the Windows installer: dist\faceapp-<version>-setup.exe
; NOT BUILT OR TESTED in this project's CI (Linux only). Recipe: packaging\windows\build.ps1.
; Input: the PyInstaller bundle dist\faceapp\ (faceapp.exe for the console, faceapp-gui.exe
; without a console window), made on Windows from packaging\faceapp.spec.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif

[Setup]
AppId={{7B0C2E6A-3D1F-4C5B-9E2A-FACEA99A0001}
AppName=faceapp
AppVersion={#AppVersion}
AppPublisher=faceapp developers
DefaultDirName={autopf}\faceapp
DefaultGroupName=faceapp
; per-user install by default (no admin rights needed); the user may choose all users
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=faceapp-{#AppVersion}-setup
SetupIconFile=faceapp.ico
UninstallDisplayIcon={app}\faceapp-gui.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesEnvironment=yes

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked
Name: "addtopath"; Description: "Add the faceapp command to PATH"; Flags: unchecked

[Files]
Source: "..\..\dist\faceapp\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\faceapp"; Filename: "{app}\faceapp-gui.exe"
Name: "{group}\faceapp door screen"; Filename: "{app}\faceapp-gui.exe"; Parameters: "door"
Name: "{autodesktop}\faceapp"; Filename: "{app}\faceapp-gui.exe"; Tasks: desktopicon

[Registry]
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\faceapp-gui.exe"; Description: "Start faceapp"; Flags: nowait postinstall skipifsilent

[Code]
function NeedsAddPath(Dir: string): Boolean;
var Paths: string;
begin
  if not RegQueryStringValue(HKCU, 'Environment', 'Path', Paths) then begin Result := True; exit; end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;

{ Uninstall keeps the user's data (enrollments, access log, settings) unless they say so:
  %LOCALAPPDATA%\faceapp is where platformdirs puts faceapp's data, config and cache. }
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var DataDir: string;
begin
  if CurUninstallStep = usPostUninstall then begin
    DataDir := ExpandConstant('{localappdata}\faceapp');
    if DirExists(DataDir) and (UninstallSilent = False) then
      if MsgBox('Also delete your faceapp data (enrolled people, access log, settings) in ' + DataDir + '?',
                mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
        DelTree(DataDir, True, True, True);
  end;
end;
