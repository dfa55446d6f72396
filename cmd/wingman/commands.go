package main

// commands is the command table: every command of the CLI, in one place.
// Generated help, completion and man pages all read it. It is filled in
// init because the generators both read it and are in it.
var commands []command

func init() {
	commands = []command{
		listCmd,
		dominfoCmd,
		hostListCmd,
		hostinfoCmd,
		statusCmd,
		protectCmd,
		unprotectCmd,
		setPolicyCmd,
		startCmd,
		stopCmd,
		migrateCmd,
		maintenanceEnterCmd,
		maintenanceExitCmd,
		maintenanceAbortCmd,
		maintenanceStatusCmd,
		rollingUpdateCmd,
		eventsCmd,
		fenceCmd,
		confirmOffCmd,
		hostQuarantineCmd,
		hostUnquarantineCmd,
		haDisarmCmd,
		haArmCmd,
		drillCmd,
		notifyAddCmd,
		notifyListCmd,
		notifyRemoveCmd,
		notifyTestCmd,
		configListCmd,
		configGetCmd,
		configSetCmd,
		configUnsetCmd,
		uiCmd,
		lunFormatCmd,
		lunDumpCmd,
		lunVerifyCmd,
		lunRestoreHeaderCmd,
		lunReclaimLeaseCmd,
		keygenCmd,
		versionCmd,
		completionBashCmd,
		completionZshCmd,
		completionFishCmd,
		manCmd,
	}
}
