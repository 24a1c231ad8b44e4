"""
The chat without any protocol: users, rooms, the rules, the limits, names,
and the events every front end renders.  Nothing here imports a front end
(L{chatservice.frontends}) or the admin shell.
"""
