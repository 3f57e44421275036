"""Study B, dim_infobal: InfoBal, a multiview InfoMax objective, against Deep InfoMax's global and
local estimators (JSD, DV, infoNCE), judged by linear probes and MI-versus-accuracy curves."""
