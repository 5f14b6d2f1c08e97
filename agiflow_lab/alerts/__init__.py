"""Alert rules on project metrics, their incidents and silences, evaluated by one leader at a time."""
