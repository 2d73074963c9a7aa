"""Intake: untrusted submissions and people's input (notebooks, zips, rosters, times), read as data and refused
with a reason code before anything runs. No student code runs here.
"""
